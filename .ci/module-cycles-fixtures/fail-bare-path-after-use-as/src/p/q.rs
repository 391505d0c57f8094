use crate::p as parent;
pub struct Q;
pub fn g(_: parent::r::R) {}
