use crate::p;
pub struct Q;
pub fn g(_: p::r::R) {}
