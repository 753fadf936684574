"""Benchmarks and load generators: `modelyard bench ...`. Each prints a table and, as its last line, JSON.

They drive the services from outside (processes, topics, HTTP) with the helpers of
``modelyard_harness``; no service package carries benchmark code.
"""
