"""On-disk formats shared by two stages (one writes, the other reads), below both."""
