// crate::a::A would be a loop
/* so would super::a::A */
pub struct B;
pub const S: &str = "crate::a::A";
