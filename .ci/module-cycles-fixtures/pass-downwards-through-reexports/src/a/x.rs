pub struct Z(super::Y);
