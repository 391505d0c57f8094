pub struct B;

#[cfg(test)]
mod tests {
    use crate::a::A;
    fn t(_: A) {}
}

#[cfg(test)]
mod props;
