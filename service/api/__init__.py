"""The HTTP faces: routes (one module per face or resource), schemas, errors, dependencies."""
