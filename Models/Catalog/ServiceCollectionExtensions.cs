using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace ModelZoo.Models.Catalog;

public static class ServiceCollectionExtensions
{
    /// <summary>Registers every model family of this library and the <see cref="IModelCatalog"/> over them.</summary>
    public static IServiceCollection AddModelZoo(this IServiceCollection services)
    {
        foreach (var family in ModelCatalog.DiscoverFamilies())
            services.AddSingleton(typeof(ModelFamily), family);
        services.TryAddSingleton<IModelCatalog>(sp => new ModelCatalog(sp.GetServices<ModelFamily>()));
        return services;
    }

    /// <summary>Adds a family of your own; its presets appear in the catalog beside the built-in ones.</summary>
    public static IServiceCollection AddModelFamily<TFamily>(this IServiceCollection services) where TFamily : ModelFamily, new()
    {
        services.AddSingleton<ModelFamily>(new TFamily());
        return services;
    }
}
