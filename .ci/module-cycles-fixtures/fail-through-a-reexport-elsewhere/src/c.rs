pub struct C;
pub fn f(_: crate::b::B) {}
