pub struct Z;
pub fn f(_: super::Y) {}
