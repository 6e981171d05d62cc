example
