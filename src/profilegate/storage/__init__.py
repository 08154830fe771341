"""The only package that talks to MongoDB: client, layout, indexes, a repository per collection."""
