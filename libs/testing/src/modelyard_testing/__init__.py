"""The pytest plugin of modelyard (see ``plugin``)."""
