import ArgumentParser

/// The `flashback-collector` command: `serve` (the default), `token`, `simulate`, `migrate-registry`
/// and `--version`.
@main
struct FlashbackCollector: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "flashback-collector",
        abstract: "Flashback Collector: node registry, bucket management and metrics store for the Flashback network.",
        discussion: """
        Every option can also come from an environment variable (FLASHBACK_ followed by the option's \
        name in upper case with '-' as '_', e.g. FLASHBACK_DATA_DIR) or from a JSON config file given \
        with --config (keys are the option names, e.g. {"data-dir": "/var/lib/flashback"}). \
        Precedence: flag > environment > config file > default.
        """,
        version: version,
        subcommands: [ServeCommand.self, TokenCommand.self, SimulateCommand.self, MigrateRegistryCommand.self, BackupCommand.self, RestoreCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}
