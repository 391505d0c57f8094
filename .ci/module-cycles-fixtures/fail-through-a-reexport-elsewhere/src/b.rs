pub struct B(crate::a::Renamed);
