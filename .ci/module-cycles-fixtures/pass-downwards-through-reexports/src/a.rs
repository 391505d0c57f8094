mod x;
mod y;
pub use y::Y;
