"""Test infrastructure: throwaway sshd and dockerd that leave nothing behind."""
