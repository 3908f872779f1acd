"""Feature transforms: pure ``DataFrame -> DataFrame`` functions wired by the features step."""
