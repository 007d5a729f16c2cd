"""The `playlist-sim` command line."""
