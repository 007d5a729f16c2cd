"""One module per `playlist-sim` subcommand."""
