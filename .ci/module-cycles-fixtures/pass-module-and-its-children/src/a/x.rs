pub struct X(super::A);
