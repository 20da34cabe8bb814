"""Test support shared by every member: the AWS emulator fixture and in-memory fakes of the ports."""
