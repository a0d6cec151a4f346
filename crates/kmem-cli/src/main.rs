//! The `kmem` command.
fn main() {}
