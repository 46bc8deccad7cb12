//! Applies sayiir-diesel's pending migrations to `DATABASE_URL` and prints
//! what it applied: what an application's own boot step or CLI would call.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL")?;
    let applied = sayiir_diesel::migrations::run(&url).await?;
    if applied.is_empty() {
        println!("sayiir schema is up to date");
    }
    for version in applied {
        println!("applied {version}");
    }
    Ok(())
}
