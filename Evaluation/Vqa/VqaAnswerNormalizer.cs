using System.Text;
using ModelZoo.Evaluation.Metrics;

namespace ModelZoo.Evaluation.Vqa;

/// <summary>
/// The answer normalisation of the official VQA evaluation (GT-Vision-Lab/VQA vqaEval.py), rule for rule,
/// including its quirks: punctuation is deleted instead of replaced by a space when the text has a punctuation
/// mark next to a space or a digit,digit comma; at most 32 periods are stripped (the script passes re.UNICODE
/// as the count); contractions are looked up after lower-casing, so the capitalised keys ("Im", "Ive") never match.
/// </summary>
public static class VqaAnswerNormalizer
{
    static readonly string[] Punctuation = { ";", "/", "[", "]", "\"", "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!" };

    static readonly HashSet<string> Articles = new(StringComparer.Ordinal) { "a", "an", "the" };

    static readonly Dictionary<string, string> NumberWords = new(StringComparer.Ordinal)
    {
        ["none"] = "0", ["zero"] = "0", ["one"] = "1", ["two"] = "2", ["three"] = "3", ["four"] = "4", ["five"] = "5",
        ["six"] = "6", ["seven"] = "7", ["eight"] = "8", ["nine"] = "9", ["ten"] = "10",
    };

    /// <summary>The script's contraction table (spelling without apostrophe -> with), quirks included.</summary>
    static readonly Dictionary<string, string> Contractions = BuildContractions();

    /// <summary>Periods the script strips at most (its count argument).</summary>
    public const int MaxPeriodsStripped = 32;

    /// <summary>What every answer and prediction gets first: newline and tab become spaces, then Python strip().</summary>
    public static string Clean(string answer) => PythonText.Strip(answer.Replace('\n', ' ').Replace('\t', ' '));

    /// <summary>processPunctuation then processDigitArticle.</summary>
    public static string Normalize(string answer) => ProcessDigitArticle(ProcessPunctuation(answer));

    /// <summary>vqaEval.py processPunctuation.</summary>
    public static string ProcessPunctuation(string text)
    {
        bool digitComma = HasDigitCommaDigit(text);
        string output = text;
        foreach (var mark in Punctuation)
        {
            bool delete = text.Contains(mark + " ", StringComparison.Ordinal) || text.Contains(" " + mark, StringComparison.Ordinal) || digitComma;
            output = output.Replace(mark, delete ? "" : " ", StringComparison.Ordinal);
        }
        return StripPeriods(output);
    }

    /// <summary>vqaEval.py processDigitArticle: lower-case, split, number words to digits, drop articles, restore contractions.</summary>
    public static string ProcessDigitArticle(string text)
    {
        var words = new List<string>();
        foreach (var word in PythonText.Split(PythonText.Lower(text)))
        {
            var mapped = NumberWords.GetValueOrDefault(word, word);
            if (!Articles.Contains(mapped)) words.Add(mapped);
        }
        for (int i = 0; i < words.Count; i++)
            if (Contractions.TryGetValue(words[i], out var restored)) words[i] = restored;
        return string.Join(' ', words);
    }

    // The pattern (\d)(\,)(\d) found anywhere.
    static bool HasDigitCommaDigit(string text)
    {
        for (int i = 0; i < text.Length; i++)
            if (text[i] == ',' && PythonText.IsDigitBefore(text, i) && PythonText.IsDigitAt(text, i + 1, out _)) return true;
        return false;
    }

    // The pattern (?!<=\d)(\.)(?!\d) replaced by "" at most 32 times: a period not followed by a digit (the first
    // group is a lookahead for the literal "<=", a typo for a lookbehind, and never fails before a period).
    static string StripPeriods(string text)
    {
        if (!text.Contains('.')) return text;
        var sb = new StringBuilder(text.Length);
        int removed = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '.' && removed < MaxPeriodsStripped && !PythonText.IsDigitAt(text, i + 1, out _))
            {
                removed++;
                continue;
            }
            sb.Append(text[i]);
        }
        return sb.ToString();
    }

    static Dictionary<string, string> BuildContractions()
    {
        // Pairs as the script lists them; a few keys are unreachable after lower-casing and one maps the other way
        // ("somebody'd" -> "somebodyd"). Kept exactly, because the metric is defined by this table.
        const string table =
            "aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't couldn'tve=couldn't've couldnt've=couldn't've " +
            "didnt=didn't doesnt=doesn't dont=don't hadnt=hadn't hadnt've=hadn't've hadn'tve=hadn't've hasnt=hasn't havent=haven't " +
            "hed=he'd hed've=he'd've he'dve=he'd've hes=he's howd=how'd howll=how'll hows=how's Id've=I'd've I'dve=I'd've Im=I'm " +
            "Ive=I've isnt=isn't itd=it'd itd've=it'd've it'dve=it'd've itll=it'll let's=let's maam=ma'am mightnt=mightn't " +
            "mightnt've=mightn't've mightn'tve=mightn't've mightve=might've mustnt=mustn't mustve=must've neednt=needn't notve=not've " +
            "oclock=o'clock oughtnt=oughtn't ow's'at='ow's'at 'ows'at='ow's'at 'ow'sat='ow's'at shant=shan't shed've=she'd've " +
            "she'dve=she'd've she's=she's shouldve=should've shouldnt=shouldn't shouldnt've=shouldn't've shouldn'tve=shouldn't've " +
            "somebody'd=somebodyd somebodyd've=somebody'd've somebody'dve=somebody'd've somebodyll=somebody'll somebodys=somebody's " +
            "someoned=someone'd someoned've=someone'd've someone'dve=someone'd've someonell=someone'll someones=someone's " +
            "somethingd=something'd somethingd've=something'd've something'dve=something'd've somethingll=something'll thats=that's " +
            "thered=there'd thered've=there'd've there'dve=there'd've therere=there're theres=there's theyd=they'd theyd've=they'd've " +
            "they'dve=they'd've theyll=they'll theyre=they're theyve=they've twas='twas wasnt=wasn't wed've=we'd've we'dve=we'd've " +
            "weve=we've werent=weren't whatll=what'll whatre=what're whats=what's whatve=what've whens=when's whered=where'd " +
            "wheres=where's whereve=where've whod=who'd whod've=who'd've who'dve=who'd've wholl=who'll whos=who's whove=who've " +
            "whyll=why'll whyre=why're whys=why's wont=won't wouldve=would've wouldnt=wouldn't wouldnt've=wouldn't've " +
            "wouldn'tve=wouldn't've yall=y'all yall'll=y'all'll y'allll=y'all'll yall'd've=y'all'd've y'alld've=y'all'd've " +
            "y'all'dve=y'all'd've youd=you'd youd've=you'd've you'dve=you'd've youll=you'll youre=you're youve=you've";
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in table.Split(' '))
        {
            int eq = pair.IndexOf('=');
            map[pair[..eq]] = pair[(eq + 1)..];
        }
        return map;
    }
}
