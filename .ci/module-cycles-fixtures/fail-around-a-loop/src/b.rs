pub struct B(crate::c::C);
