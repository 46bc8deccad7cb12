//! Rebuild when a migration is added: `embed_migrations!` cannot tell cargo
//! about new directories itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
