using System.CommandLine;
using ModelZoo.Cli.Infrastructure;

namespace ModelZoo.Cli.Commands;

/// <summary>`modelzoo eval --model NAME --weights DIR --task vqa|retrieval --data PATH`: runs a model on a task's data.</summary>
static class EvalModelAction
{
    public static void Attach(Command eval)
    {
        var model = new Option<string?>("--model") { Description = "Preset name (see `modelzoo list`)" };
        eval.Add(model);
        eval.Guard(parse =>
        {
            if (parse.GetValue(model) is null)
                throw new ArgumentException("give a subcommand (`eval vqa`, `eval retrieval`) or --model NAME --weights DIR --task vqa|retrieval --data PATH");
            throw new NotSupportedException("model evaluation is not wired yet");
        });
    }
}
