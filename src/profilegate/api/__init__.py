"""The only package that imports strawberry: schema, permissions, context and HTTP adapter."""
