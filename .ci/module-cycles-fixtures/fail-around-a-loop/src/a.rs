pub struct A(crate::b::B);
