use crate::a;
pub fn f(_: a::Y) {}
