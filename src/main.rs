fn main() -> std::process::ExitCode {
    latamctl::cli::main()
}
