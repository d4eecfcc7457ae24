"""The GraphQL API: types, resolvers, DataLoaders, context and schema extensions."""
