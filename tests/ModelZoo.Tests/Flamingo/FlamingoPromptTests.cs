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

public class FlamingoPromptTokenizerTests
{
    [Test]
    public void InterleavedPromptsTokenizeWithTheFlamingoTokensAsSingleIds()
    {
        var tokenizer = ModelZoo.Tokenization.TokenizerFactory.Create("gpt2-flamingo");
        var prompt = FlamingoPrompts.FewShotVqa(new[] { ("What is it?", "a cat") }, "What color?");
        var ids = FlamingoPrompts.Encode(tokenizer, FlamingoFamily.Tiny, prompt);
        Assert.That(ids[0], Is.EqualTo(FlamingoFamily.Gpt2Media));
        Assert.That(ids.Count(i => i == FlamingoFamily.Gpt2Media), Is.EqualTo(2));
        Assert.That(ids.Count(i => i == FlamingoFamily.Gpt2EndOfChunk), Is.EqualTo(1));
        // the text between the markers is ordinary GPT-2 BPE
        var question = tokenizer.EncodeToIds("Question:What is it? Short answer:a cat").Select(i => (long)i).ToArray();
        Assert.That(ids.Skip(1).Take(question.Length), Is.EqualTo(question));
        Assert.That(tokenizer.Decode(ids.Select(i => (int)i)), Is.EqualTo(prompt));
    }

    [Test]
    public void ATokenizerWithoutTheFlamingoTokensIsRefused()
    {
        var plain = ModelZoo.Tokenization.TokenizerFactory.Create("gpt2");
        var e = Assert.Throws<InvalidDataException>(() => FlamingoPrompts.Encode(plain, FlamingoFamily.Tiny, "<image>hi"));
        Assert.That(e!.Message, Does.Contain("<image>").And.Contain("50258").And.Contain("gpt2-flamingo"));
    }
}
