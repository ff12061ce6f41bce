"""The Pulumi side of serverless-mesh: typed stack config and one ComponentResource per concern."""
