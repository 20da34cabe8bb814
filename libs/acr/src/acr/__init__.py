"""ACR shared kernel: what every service needs to publish, consume and run on AWS or an emulator."""
