pub struct R(super::q::Q);
