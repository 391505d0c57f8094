pub struct Y(super::x::Z);
