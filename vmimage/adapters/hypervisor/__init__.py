"""Hypervisor adapters: running servers as real processes."""

from vmimage.adapters.hypervisor.qemu import QemuHypervisor

__all__ = ["QemuHypervisor"]
