"""Test helpers shared by several test packages: images, ports and real helper processes."""
