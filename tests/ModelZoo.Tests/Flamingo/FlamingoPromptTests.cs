using ModelZoo.Models.Flamingo;
using NUnit.Framework;

namespace ModelZoo.Tests.Flamingo;

public class FlamingoPromptTests
{
    [Test]
    public void FewShotVqaFollowsTheOpenFlamingoEvalFormat()
    {
        var prompt = FlamingoPrompts.FewShotVqa(new[] { ("What is it?", "a cat"), ("How many?", "2") }, "What color is the sink?");
        Assert.That(prompt, Is.EqualTo(
            "<image>Question:What is it? Short answer:a cat<|endofchunk|>" +
            "<image>Question:How many? Short answer:2<|endofchunk|>" +
            "<image>Question:What color is the sink? Short answer:"));
        Assert.That(FlamingoPrompts.CountImages(prompt), Is.EqualTo(3));
    }

    [Test]
    public void FewShotCaptionEndsWithAnOpenOutput()
    {
        Assert.That(FlamingoPrompts.FewShotCaption(new[] { "Two cats." }), Is.EqualTo("<image>Output:Two cats.<|endofchunk|><image>Output:"));
        Assert.That(FlamingoPrompts.FewShotCaption(Array.Empty<string>()), Is.EqualTo("<image>Output:"));
        Assert.That(FlamingoPrompts.CountImages("no images"), Is.EqualTo(0));
        Assert.That(FlamingoPrompts.CountImages("<image><image>x<image>"), Is.EqualTo(3));
    }
}
