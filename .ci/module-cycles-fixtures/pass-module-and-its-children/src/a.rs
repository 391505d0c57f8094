mod x;
pub use x::X;
pub struct A;
