mod q;
mod r;
