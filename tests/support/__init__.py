"""Helpers shared by the test suite: free ports and real local servers started and stopped by tests."""
