pub struct B;
pub fn f(_: crate::a::A) {}
