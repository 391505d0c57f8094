#[cfg(test)]
mod props;

use crate::b::B;
pub struct A(B);
