pub struct T(crate::low::L);
