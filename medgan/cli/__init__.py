"""The ``medgan`` command line: one module per command, each thin (parse, load config, call the library)."""
