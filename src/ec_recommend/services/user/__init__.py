"""UserService: accounts keyed by Cognito subject, and their profiles."""
