mod top;
mod low;
mod base;
