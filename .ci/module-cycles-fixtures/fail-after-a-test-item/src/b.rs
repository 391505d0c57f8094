#[cfg(test)]
fn sized(_: [u8; 4]) -> u8 { '}' as u8 }

pub struct B;
pub fn f(_: crate::a::A) {}
