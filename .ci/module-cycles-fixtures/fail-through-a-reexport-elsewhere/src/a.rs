pub use crate::c::C as Renamed;
pub struct A;
