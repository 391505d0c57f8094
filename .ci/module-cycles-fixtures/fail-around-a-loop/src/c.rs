pub struct C;
pub fn f(_: &crate::a::A) {}
