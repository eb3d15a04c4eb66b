return ModelZoo.Cli.CliApp.Run(args);
