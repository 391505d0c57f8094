pub struct L(crate::base::B);
